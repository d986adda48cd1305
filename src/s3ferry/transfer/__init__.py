"""How one object moves: buffer pool, upload and download lanes, checksums."""
