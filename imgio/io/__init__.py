"""Low-level I/O shared by the format plugins (positioned reads into views)."""
