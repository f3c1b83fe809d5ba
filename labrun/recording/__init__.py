"""The write path of a run: events, the local journal, the recorder thread, output capture, background
delivery to observers, and ``labrun sync``."""
