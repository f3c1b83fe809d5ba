"""The write path without a Run: the journal, its events, delivery to an observer, the metric codec."""

from array import array

from labrun.recording import events
from labrun.recording.dispatcher import deliver_events
from labrun.recording.journal import Journal, read_events
from labrun.recording.metric_codec import decode, encode_points
from labrun.observer import RunObserver
from labrun.recording.recorder import metrics_event


class Collecting(RunObserver):
    def __init__(self):
        self.calls = []

    def metrics(self, metrics):
        self.calls.append(("metrics", {name: list(series["values"]) for name, series in metrics.items()}))

    def heartbeat(self, info, output, result, beat_time):
        self.calls.append(("heartbeat", info, output))

    def ended(self, status, stop_time, result, fail_trace, info, output):
        self.calls.append(("ended", status, result))


def points(values, start=0):
    flat = array("d")
    for i, value in enumerate(values):
        flat.extend((start + i, value, 1_700_000_000.0 + i))
    return flat


def test_codec_round_trip_keeps_every_point_exactly():
    series = decode(encode_points(points([0.1, -2.5, 1e300])))
    assert list(series["steps"]) == [0, 1, 2] and list(series["values"]) == [0.1, -2.5, 1e300]
    assert list(series["timestamps"]) == [1_700_000_000.0, 1_700_000_001.0, 1_700_000_002.0]


def test_journal_keeps_events_in_order_and_delivery_coalesces_metrics(tmp_path):
    journal = Journal("u1", root=str(tmp_path))
    journal.append([events.started({"uid": "u1"}, [])])
    journal.append([metrics_event("loss", points([1.0, 0.5])), metrics_event("loss", points([0.25], 2)),
                    metrics_event("acc", points([0.9]))])
    journal.append([events.heartbeat({"epoch": 1}, "hello\n", None, "2026-12-01T10:00:00")])
    journal.append([events.ended("COMPLETED", "2026-12-01T10:00:01", 3, None, {}, "")])
    kinds = [event["type"] for _end, event in read_events(journal.path, 0, journal.committed)]
    assert kinds == ["started", "metrics", "metrics", "metrics", "heartbeat", "ended"]
    observer, started = Collecting(), []
    offsets = list(deliver_events(observer, journal.path, 0, journal.committed, started.append))
    assert started == [{"uid": "u1"}]
    # the three metrics events reach the observer as one call, the two loss batches joined
    assert observer.calls == [("metrics", {"loss": [1.0, 0.5, 0.25], "acc": [0.9]}),
                              ("heartbeat", {"epoch": 1}, "hello\n"), ("ended", "COMPLETED", 3)]
    assert offsets[-1] == journal.committed and offsets == sorted(offsets)
    journal.close()


def test_delivery_resumes_from_the_offset_it_reached(tmp_path):
    journal = Journal("u2", root=str(tmp_path))
    journal.append([events.started({"uid": "u2"}, []), events.heartbeat({}, "a\n", None, "t1")])
    middle = journal.committed
    journal.append([events.heartbeat({}, "b\n", None, "t2"), events.ended("FAILED", "t3", None, ["trace"], {}, "")])
    observer = Collecting()
    list(deliver_events(observer, journal.path, middle, journal.committed, lambda record: None))
    assert observer.calls == [("heartbeat", {}, "b\n"), ("ended", "FAILED", None)]
    journal.close()


def test_the_first_observer_that_answers_names_the_run_and_the_others_follow():
    from labrun.recording.dispatcher import RunId

    run_id = RunId(None, 3)
    assert run_id.wait_turn(0) is None
    assert run_id.tried(0) is False  # the preferred store is down: it hands the naming on
    assert run_id.wait_turn(1) is None
    assert run_id.tried(1, 7) is False  # the next one names the run 7
    assert run_id.wait_turn(2) == 7  # and the last is asked to use 7
    assert run_id.tried(2, 8) is True  # it could not: the stores disagree, which the dispatcher reports
    assert run_id.wait() == 7


def test_a_failing_observer_is_retried_with_backoff(tmp_path):
    from labrun.recording.dispatcher import MAX_BACKOFF, Delivery, RunId

    class Flaky(Collecting):
        def __init__(self):
            super().__init__()
            self.fail = True

        def started(self, record, _id):
            if self.fail:
                raise ConnectionError("down")
            return 1

    journal = Journal("u3", root=str(tmp_path))
    journal.append([events.started({"uid": "u3"}, []), events.ended("COMPLETED", "t", 1, None, {}, "")])
    now = [100.0]
    observer = Flaky()
    delivery = Delivery(observer, journal, RunId(None, 1), 0)
    delivery.clock = lambda: now[0]
    waits = []
    for _ in range(8):
        delivery._deliver_available()
        waits.append(delivery.retry_at - now[0])
        now[0] = delivery.retry_at
    assert waits == [1.0, 2.0, 4.0, 8.0, 16.0, MAX_BACKOFF, MAX_BACKOFF, MAX_BACKOFF] and delivery.offset == 0
    observer.fail = False
    delivery._deliver_available()
    assert delivery.failures == 0 and delivery.offset == journal.committed and delivery.assigned_id == 1
    assert observer.calls == [("ended", "COMPLETED", 1)]
    journal.close()
