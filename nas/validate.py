"""Optional on-board validation of the final front: each front model, trained, run sample by sample on a
virtual board of the target and on the host interpreter (``nas search --validate-front N``). Results are
study attributes ``validation:<trial>`` (a finished trial's attributes cannot change)."""

from __future__ import annotations

from nas.adapter import LabError, validate_on_board


def validate_front(search, front: list[dict], samples: int) -> list[dict]:
    """``front`` with a ``validation`` entry per model this worker trained (others: the reason it is missing)."""
    d = search.config.dataset
    x, y = d.x_test[:samples], d.y_test[:samples]
    out = []
    for entry in front:
        model = search.trained_models.get(entry["trial"])
        if model is None:
            out.append({**entry, "validation": {"skipped": "trained by another worker or run"}})
            continue
        try:
            result = validate_on_board(model, x, y, search.lab.target)
        except LabError as exc:
            result = {"error": str(exc)}
        search.study.set_user_attr(f"validation:{entry['trial']}", result)  # a finished trial cannot change
        out.append({**entry, "validation": result})
    return out
