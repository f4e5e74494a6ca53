"""Tools for operators: backup and restore, a check of everything the store keeps."""
