"""The command line: argv -> config -> job -> render -> exit code."""
