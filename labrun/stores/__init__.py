"""Store layouts shared by the writers (``labrun.observers``) and the readers (``labrun.readback``)."""
