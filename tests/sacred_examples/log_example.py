"""A custom logger attached to the experiment."""
import logging

from sacred import Experiment

ex = Experiment("logging_demo")

logger = logging.getLogger("custom")
logger.handlers = []
handler = logging.StreamHandler()
handler.setFormatter(logging.Formatter("<%(levelname)s> %(name)s: %(message)s"))
logger.addHandler(handler)
logger.setLevel("INFO")
ex.logger = logger


@ex.config
def cfg():
    amount = 3
    ready = False


@ex.capture
def prepare(ready, amount, _log):
    if ready:
        _log.debug("ready, preparing")
        return amount * 2
    _log.warning("not ready")
    return 0


@ex.automain
def main(amount, _log):
    _log.info("preparing %d", amount)
    out = prepare()
    _log.info("prepared %d", out)
    return out
