"""Sans-I/O cores: plain Python with no sockets, database, event loop or clock of their own."""
