"""`transferviz score --target CONFIG CHECKPOINT...`: candidate source models ranked for a target before any
fine-tuning (issue 14, item 3), with one-line errors for bad checkpoints."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from transferviz.analysis.transferability import ESTIMATES
from transferviz.build.estimates import rank_table, source_estimates
from transferviz.cli import main
from transferviz.models import build_model


@pytest.fixture(scope="module")
def candidates(tiny_cache, tmp_path_factory):
    """The tiny run's config as a file, and checkpoints: its source and target models, a fresh 5-class model
    of the same architecture, a file that is no checkpoint, and one of another architecture."""
    d = tmp_path_factory.mktemp("score")
    config = d / "tiny.yaml"
    config.write_text(yaml.safe_dump(tiny_cache.config))
    paths = {"source": d / "source.pt", "target": d / "target.pt", "five": d / "five.pt", "garbage": d / "garbage.pt",
             "other": d / "other.pt"}
    torch.save(tiny_cache.model("source").state_dict(), paths["source"])
    torch.save(tiny_cache.model("target").state_dict(), paths["target"])
    torch.manual_seed(0)
    torch.save(build_model("small_alexnet", 5, 28).state_dict(), paths["five"])
    paths["garbage"].write_bytes(b"not a checkpoint")
    torch.save(torch.nn.Linear(3, 2).state_dict(), paths["other"])
    return config, paths


def printed_table(out: str) -> pd.DataFrame:
    lines = [line.split() for line in out.strip().splitlines() if line.strip()]
    header = lines[0]
    rows = [r for r in lines[1:] if len(r) == len(header)]
    return pd.DataFrame(rows, columns=header).set_index("model")


def test_score_ranks_checkpoints_with_the_estimates_of_the_build(candidates, tiny_cache, capsys):
    config, paths = candidates
    rc = main(["score", "--target", str(config), "--device", "cpu", str(paths["source"]), str(paths["target"]),
               str(paths["five"])])
    out = capsys.readouterr().out
    assert rc == 0
    table = printed_table(out)
    assert set(table.index) == {str(paths[k]) for k in ("source", "target", "five")}
    assert table.loc[str(paths["five"]), "classes"] == "5"
    assert sorted(table["rank"].astype(int)) == [1, 2, 3]
    # the score of the run's own source model is what the transfer stage computes on the built cache's rows:
    # same instances, same order, same labels
    df = tiny_cache.instances
    rows = np.flatnonzero(((df.domain == "target") & (df.split == "train")).to_numpy())
    expected = source_estimates(tiny_cache.model("source"), tiny_cache.layer_info["embedding_layer"],
                                tiny_cache.inputs(rows), df["label"].to_numpy()[rows], torch.device("cpu"))
    for key, label in ESTIMATES.items():
        assert float(table.loc[str(paths["source"]), label]) == pytest.approx(expected[key], abs=6e-5)
    stored = tiny_cache.transfer_estimates()
    if stored is not None:  # a tiny cache built with the transfer stage (CI's fresh one)
        assert float(table.loc[str(paths["source"]), "LogME"]) == pytest.approx(stored["logme"], abs=6e-5)


def test_bad_checkpoints_are_one_line_errors_and_the_rest_still_ranked(candidates, capsys):
    config, paths = candidates
    missing = paths["source"].parent / "missing.pt"
    rc = main(["score", "--target", str(config), "--device", "cpu", str(paths["source"]), str(paths["garbage"]),
               str(paths["other"]), str(missing)])
    captured = capsys.readouterr()
    assert rc == 2
    errors = [line for line in captured.err.splitlines() if line.startswith("error:")]
    assert len(errors) == 3
    assert any(str(paths["garbage"]) in e and "weights_only" in e for e in errors)
    assert any(str(paths["other"]) in e and "small_alexnet" in e for e in errors)
    assert any(str(missing) in e and "does not exist" in e for e in errors)
    assert list(printed_table(captured.out).index) == [str(paths["source"])]


def test_all_bad_and_a_wrong_ranking_key_fail_in_one_line(candidates, capsys):
    config, paths = candidates
    assert main(["score", "--target", str(config), str(paths["garbage"])]) == 2
    assert "no checkpoint could be scored" in capsys.readouterr().err
    assert main(["score", "--target", str(config), "--by", "logmee", str(paths["source"])]) == 2
    assert "--by 'logmee'" in capsys.readouterr().err


def test_rank_table_orders_by_one_estimate_or_the_mean_rank():
    scores = pd.DataFrame({"model": ["a", "b", "c"], "classes": [10, 10, 10], "logme": [0.1, 0.3, 0.2],
                           "leep": [-1.0, -2.0, -0.5], "nce": [-1.0, -2.0, -0.5], "hscore": [1.0, 3.0, 2.0]})
    assert list(rank_table(scores, "logme")["model"]) == ["b", "c", "a"]
    assert list(rank_table(scores, "leep")["model"]) == ["c", "a", "b"]
    # mean ranks: a (3 + 2 + 2 + 3) / 4 = 2.5, b (1 + 3 + 3 + 1) / 4 = 2, c (2 + 1 + 1 + 2) / 4 = 1.5
    ranked = rank_table(scores)
    assert list(ranked["model"]) == ["c", "b", "a"] and list(ranked["rank"]) == [1, 2, 3]
