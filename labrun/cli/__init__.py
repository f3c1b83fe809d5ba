"""The command lines: the ``labrun`` tool, a script's own argv, its options and built-in commands."""
