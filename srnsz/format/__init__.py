"""The stream container: magic, version, header, sections."""
