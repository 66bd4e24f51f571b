"""The unattended job, one recording at a time or a whole bucket at once (the process issue)."""
