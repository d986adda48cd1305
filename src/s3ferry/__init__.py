"""s3ferry."""
