"""Observer backends, installed as ``labrun.observers``; each is imported only when used.

Observers are chosen by URL (``-o file://runs``); see ``labrun.observer_registry`` for the schemes.
"""
