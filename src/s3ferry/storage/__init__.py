"""Where bytes live: the S3 store and the clients behind it."""
