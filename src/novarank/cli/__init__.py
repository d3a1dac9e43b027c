"""The `novarank` command line: a thin shell over the library."""
