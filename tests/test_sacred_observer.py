"""An observer written for Sacred (started_event ... completed_event) keeps working with labrun."""

import datetime

import pytest

from labrun import Experiment
from labrun.observer import RunObserver, SacredObserverAdapter, adapt


class SacredStyleObserver:
    """What a Sacred user's custom observer looks like: Sacred's method names and arguments."""

    priority = 5

    def __init__(self):
        self.calls = []

    def started_event(self, ex_info, command, host_info, start_time, config, meta_info, _id):
        self.calls.append(("started", ex_info["name"], command, type(start_time), config["lr"], meta_info["command"]))
        return "sacred-7"

    def heartbeat_event(self, info, captured_out, beat_time, result):
        self.calls.append(("heartbeat", dict(info), captured_out, type(beat_time), result))

    def log_metrics(self, metrics_by_name, info):
        for name, series in metrics_by_name.items():
            self.calls.append(("metrics", name, series["steps"], series["values"], type(series["timestamps"][0])))

    def artifact_event(self, name, filename, metadata=None, content_type=None):
        self.calls.append(("artifact", name, open(filename).read()))

    def resource_event(self, filename):
        self.calls.append(("resource", filename))

    def completed_event(self, stop_time, result):
        self.calls.append(("completed", type(stop_time), result))

    def failed_event(self, fail_time, fail_trace):
        self.calls.append(("failed", "".join(fail_trace)))

    def interrupted_event(self, interrupt_time, status):
        self.calls.append(("interrupted", status))


def make_experiment(observer, tmp_path):
    ex = Experiment("sacred_style")
    ex.observers.append(observer)

    @ex.config
    def cfg():
        lr = 0.1
        fail = False

    @ex.main
    def main(lr, fail, _run):
        print("hello from the run")
        _run.info["epoch"] = 2
        for step in range(3):
            _run.log_scalar("loss", lr * step)
        (tmp_path / "model.txt").write_text("weights")
        _run.add_artifact(str(tmp_path / "model.txt"))
        if fail:
            raise ValueError("diverged")
        return lr * 10

    return ex


def test_a_sacred_style_observer_receives_the_run_with_sacreds_arguments(tmp_path):
    observer = SacredStyleObserver()
    run = make_experiment(observer, tmp_path).run(options={"--capture": "sys"})
    assert run._id == "sacred-7"  # the id its started_event returned names the run
    kinds = [call[0] for call in observer.calls]
    assert kinds[0] == "started" and kinds[-1] == "completed"
    assert observer.calls[0] == ("started", "sacred_style", "main", datetime.datetime, 0.1, "main")
    metrics = [c for c in observer.calls if c[0] == "metrics" and c[1] == "loss"]
    assert [v for c in metrics for v in c[3]] == [0.0, 0.1, 0.2] and metrics[0][4] is datetime.datetime
    assert ("artifact", "model.txt", "weights") in observer.calls
    last_beat = [c for c in observer.calls if c[0] == "heartbeat"][-1]
    assert "hello from the run" in last_beat[2] and last_beat[1]["epoch"] == 2 and last_beat[4] == 1.0
    assert observer.calls[-1] == ("completed", datetime.datetime, 1.0)


def test_a_failing_run_reaches_failed_event(tmp_path):
    observer = SacredStyleObserver()
    with pytest.raises(ValueError):
        make_experiment(observer, tmp_path).run(config_updates={"fail": True}, options={"--capture": "sys"})
    assert observer.calls[-1][0] == "failed" and "ValueError: diverged" in observer.calls[-1][1]


def test_only_observers_written_for_sacred_are_adapted():
    sacred = SacredStyleObserver()
    assert isinstance(adapt(sacred), SacredObserverAdapter) and adapt(sacred).priority == 5

    class LabrunStyle(RunObserver):
        def started(self, record, _id):
            return _id

    class SacredSubclass(RunObserver):  # Sacred's names on labrun's base class: still Sacred's API
        def completed_event(self, stop_time, result):
            pass

    assert adapt(own := LabrunStyle()) is own
    assert isinstance(adapt(SacredSubclass()), SacredObserverAdapter)


def test_a_subclass_of_sacreds_run_observer_receives_every_event(tmp_path):
    from labrun.observers import RunObserver as SacredRunObserver

    class Recorder(SacredRunObserver):  # as `from sacred.observers import RunObserver` users write it
        priority = 3

        def __init__(self):
            self.events = []

        def started_event(self, ex_info, command, host_info, start_time, config, meta_info, _id):
            self.events.append("started")

        def heartbeat_event(self, info, captured_out, beat_time, result):
            self.events.append("heartbeat")

        def log_metrics(self, metrics_by_name, info):
            self.events.append("log_metrics")

        def artifact_event(self, name, filename, metadata=None, content_type=None):
            self.events.append("artifact")

        def resource_event(self, filename):
            self.events.append("resource")

        def completed_event(self, stop_time, result):
            self.events.append(("completed", result))

    recorder = Recorder()
    ex = make_experiment(recorder, tmp_path)
    (tmp_path / "data.txt").write_text("x")

    @ex.pre_run_hook
    def read_data(_run):
        _run.add_resource(str(tmp_path / "data.txt"))

    ex.run()
    assert recorder.events[0] == "started" and recorder.events[-1] == ("completed", 1.0)
    assert {"heartbeat", "log_metrics", "artifact", "resource"} <= set(recorder.events)
