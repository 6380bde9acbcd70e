"""A study's folder: one per ``ponder tune`` study, shared by every worker that runs its trials.

    STUDY/
      study.json     what the study tunes (space, dataset, backend, budget, seed): a folder is
                     resumed only by the same study
      space.json     the resolved search space the trials read
      study.db       Optuna's storage (SQLite): every trial, its parameters and its values
      probe/         the difficulty probe's run over the tuning split
      trials/NAME/   one ``ponder run`` folder per distinct trial config
      fronts.png, front.txt, trials.csv, profile.yaml   what the study found
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ponder.errors import BadRequestError

STUDY_NAME = "ponder"


class StudyDir:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).resolve()
        self.identity_file = self.path / "study.json"
        self.space_file = self.path / "space.json"
        self.storage = f"sqlite:///{self.path / 'study.db'}"
        self.probe_dir = self.path / "probe"
        self.trials_dir = self.path / "trials"

    def start(self, identity: Mapping[str, Any], space_json: str) -> bool:
        """Create the folder, or check that it holds this study; whether it existed."""
        wanted = json.loads(json.dumps(identity, sort_keys=True, default=str))
        if self.identity_file.exists():
            found = json.loads(self.identity_file.read_text())
            if found != wanted:
                differ = sorted(k for k in set(found) | set(wanted) if found.get(k) != wanted.get(k))
                raise BadRequestError(
                    f"tune.study: {self.path} holds a study with other {', '.join(differ)}; "
                    "give another tune.study, or delete the folder to start over")
            return True
        self.path.mkdir(parents=True, exist_ok=True)
        self.identity_file.write_text(json.dumps(wanted, indent=2, sort_keys=True))
        self.space_file.write_text(space_json)
        return False

    def finished_trials(self) -> int:
        """Trials the storage holds as complete (0 for a new study)."""
        import optuna

        if not (self.path / "study.db").exists():
            return 0
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        try:
            study = optuna.load_study(study_name=STUDY_NAME, storage=self.storage)
        except KeyError:  # the database exists but the study was never created in it
            return 0
        return sum(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)
