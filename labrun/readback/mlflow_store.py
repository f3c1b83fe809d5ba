"""Reading runs back from MLflow (``mlflow+sqlite:///abs/mlflow.db``, ``mlflow+file:///abs/mlruns``,
``mlflow+http://host:port``), for ``labrun rerun`` and ``labrun show``.

The MLflow observer logs each run's whole record as the artifact ``run.json`` (with the md5 of each
source), its config as ``config.json`` and its sources under ``source/``, so a run is read back from those.
A run is named by labrun's id (the ``labrun.run_id`` tag, as another store numbered it) or by MLflow's run id.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import tempfile
from typing import Any

from labrun._util.redact import redact_url
from labrun._util.suggest import did_you_mean
from labrun.errors import StoreReadError
from labrun.readback.store import RunStore
from labrun.readback.stored_run import StoredRun


class MlflowStoreReader(RunStore):
    """The runs labrun recorded in one MLflow tracking store."""

    def __init__(self, url: str):
        from labrun.stores.mlflow_format import tracking_uri

        self.url = url
        self.tracking_uri = tracking_uri(url)
        self.label = redact_url(url)
        self.observer_args = ["-o", url]
        if self.tracking_uri.startswith("file:"):  # asked for by name; MLflow 3 refuses it unless opted in
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        from mlflow.tracking import MlflowClient

        self._client = MlflowClient(tracking_uri=self.tracking_uri)
        self._scratch: str | None = None

    def _labrun_runs(self, filter_string: str = "") -> list[Any]:
        experiments = [e.experiment_id for e in self._client.search_experiments()]
        condition = "tags.`labrun.uid` != ''" + (f" and {filter_string}" if filter_string else "")
        return list(self._client.search_runs(experiments, filter_string=condition, max_results=50_000))

    def _find(self, run_id: Any) -> Any:
        text = str(run_id)
        found = self._labrun_runs(f"tags.`labrun.run_id` = '{text}'") if "'" not in text else []
        if found:
            return found[0]
        try:
            return self._client.get_run(text)
        except Exception:
            known = [run.data.tags.get("labrun.run_id") or run.info.run_id for run in self._labrun_runs()]
            raise StoreReadError(f"no run '{text}' in the MLflow store {self.label}{did_you_mean(text, known)}; "
                                 f"runs there: {', '.join(known[-10:]) or 'none'}") from None

    def run(self, run_id: Any) -> StoredRun:
        mlflow_run = self._find(run_id)
        return StoredRun(self, mlflow_run.info.run_id, self._record_of(mlflow_run))

    def record(self, run_id: Any) -> dict[str, Any]:
        return self._record_of(self._client.get_run(str(run_id)))

    def _record_of(self, mlflow_run: Any) -> dict[str, Any]:
        """run.json as the MLflow observer logged it, with the status and result the run ended with."""
        try:
            with open(self._download(mlflow_run.info.run_id, "run.json"), encoding="utf-8") as f:
                record = json.load(f)
        except Exception as exc:  # no such artifact (MlflowException), or not JSON
            raise StoreReadError(f"MLflow run {mlflow_run.info.run_id} in {self.label} has no readable run.json "
                                 f"artifact ({exc}); it was recorded by MLflow's own API, or by an older labrun"
                                 ) from None
        tags = mlflow_run.data.tags
        record["status"] = tags.get("labrun.status", record.get("status"))
        if "labrun.result" in tags:
            record["result"] = json.loads(tags["labrun.result"])
        return record

    def all_runs(self) -> list[StoredRun]:
        """Every labrun run in the store, oldest first (each one's run.json is downloaded: not for big stores)."""
        found = sorted(self._labrun_runs(), key=lambda run: run.info.start_time or 0)
        return [StoredRun(self, run.info.run_id, self._record_of(run)) for run in found]

    def info(self, run_id: Any, record: dict[str, Any]) -> dict[str, Any]:
        text = self._optional_text(str(run_id), "info.json")
        return json.loads(text) if text else {}

    def output(self, run_id: Any) -> str:
        return self._optional_text(str(run_id), "cout.txt")

    def _optional_text(self, run_id: str, artifact: str) -> str:
        """An artifact's text, or "" when it was not logged (a run with no info, no output)."""
        try:
            with open(self._download(run_id, artifact), encoding="utf-8") as f:
                return f.read()
        except Exception:  # MLflow's error for a missing artifact
            return ""

    def config(self, run_id: Any) -> dict[str, Any]:
        with open(self._download(str(run_id), "config.json"), encoding="utf-8") as f:
            return json.load(f)

    def find_uid(self, uid: str) -> StoredRun | None:
        found = self._labrun_runs(f"tags.`labrun.uid` = '{uid}'")
        return StoredRun(self, found[0].info.run_id, self._record_of(found[0])) if found else None

    def metrics(self, run_id: Any) -> dict[str, dict[str, list]]:
        """Every point of every metric, from MLflow's histories (timestamps as POSIX seconds)."""
        out: dict[str, dict[str, list]] = {}
        for name in self._client.get_run(str(run_id)).data.metrics:
            history = sorted(self._client.get_metric_history(str(run_id), name), key=lambda m: (m.timestamp, m.step))
            out[name] = {"steps": [m.step for m in history], "values": [m.value for m in history],
                         "timestamps": [m.timestamp / 1000 for m in history]}
        return out

    def final_metrics(self, run_id: Any) -> dict[str, float]:
        return dict(self._client.get_run(str(run_id)).data.metrics)

    def source_files(self, run_id: Any, record: dict[str, Any]) -> dict[str, str]:
        return {path: self._download(str(run_id), stored)
                for path, stored in record.get("experiment", {}).get("sources", [])}

    def source_hashes(self, run_id: Any, record: dict[str, Any]) -> dict[str, str]:
        return dict((record.get("labrun") or {}).get("sources_md5") or {})

    def _download(self, run_id: str, artifact: str) -> str:
        if self._scratch is None:
            self._scratch = tempfile.mkdtemp(prefix="labrun-mlflow-")
            atexit.register(shutil.rmtree, self._scratch, True)
        target = os.path.join(self._scratch, run_id)
        os.makedirs(target, exist_ok=True)
        return self._client.download_artifacts(run_id, artifact, target)
