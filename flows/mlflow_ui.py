"""Where ``w2s ui`` sends the researcher: the MLflow UI's model-training view of an experiment.

MLflow 3.17's UI has two views, "GenAI" (traces, sessions, judges, prompts) and "Model
training" (runs, their params, metrics and artifacts), and opens in the GenAI one. Which
one an experiment page shows is decided in the browser: by the page address's
``workflowType`` parameter, else by the last choice kept in the browser's local storage,
else GenAI. The experiment's ``mlflow.experimentKind`` tag, which the workbench sets to
``custom_model_development`` on its experiments, declares what they hold, but that UI
release derives the kind from the view rather than the view from the tag (checked in
headless Chromium: see docs/tracking.md). So the address printed here carries the view.
"""

from __future__ import annotations

from tasks import tracking

TRAINING_VIEW = "workflowType=machine_learning"


def experiment_url(base: str, experiment_id: str | None) -> str:
    """The runs table of an experiment (or the list of experiments) in the model-training view."""
    if experiment_id is None:
        return f"{base}/#/experiments?{TRAINING_VIEW}"
    return f"{base}/#/experiments/{experiment_id}/runs?{TRAINING_VIEW}"


def served_experiment(name: str | None = None) -> tuple[str, str] | None:
    """``(id, name)`` of experiment ``name``, or else of the newest experiment or sweep or
    study run's experiment; None when the store holds no run. Experiments holding the
    workbench's runs are declared model-training experiments on the way."""
    c = tracking.client()
    experiments = c.search_experiments()
    for e in experiments:
        if tracking.EXPERIMENT_KIND_TAG not in e.tags and c.search_runs(
            [e.experiment_id], "tags.`w2s.config_hash` IS NOT NULL", max_results=1
        ):
            tracking.mark_training_experiment(c, e)
    if name is not None:
        found = c.get_experiment_by_name(name)
        if found is None:
            names = ", ".join(sorted(e.name for e in experiments)) or "none"
            raise LookupError(f"experiment '{name}' not found (experiments: {names})")
        return found.experiment_id, found.name
    newest = c.search_runs(
        [e.experiment_id for e in experiments], "tags.`w2s.stage` IS NULL",
        order_by=["attributes.start_time DESC"], max_results=1,
    ) if experiments else []
    if not newest:
        return None
    experiment = newest[0].info.experiment_id
    return experiment, next(e.name for e in experiments if e.experiment_id == experiment)
