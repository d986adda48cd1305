"""What exists: local walks and bucket listings, in S3 key order."""
