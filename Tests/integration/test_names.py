"""Names are UTF-8 text: `leep produce` refuses a name whose bytes are not UTF-8 rather than
publish it rewritten (Swift would turn each bad byte into U+FFFD)."""

from __future__ import annotations

import subprocess

import numpy as np

from cluster import make_run


def test_produce_refuses_a_name_that_is_not_utf8(fresh_cluster, tmp_path):
    cluster = fresh_cluster
    (predictions, labels), _ = make_run(tmp_path, "names", rows=100, source=10, target=3, dtype=np.float32, seed=5)
    for arguments, option in [([b"--model", b"caf\xe9"], "--model"), ([b"--model=caf\xe9"], "--model"),
                              ([b"--model", b"m", b"--dataset", b"\xff\xfe"], "--dataset")]:
        if b"--model" not in arguments and not any(a.startswith(b"--model=") for a in arguments):
            arguments = [b"--model", b"m", *arguments]
        if b"--dataset" not in arguments:
            arguments = [*arguments, b"--dataset", b"d"]
        result = subprocess.run([str(cluster.leep).encode(), b"produce", *arguments, b"--predictions", str(predictions).encode(),
                                 b"--labels", str(labels).encode(), *[a.encode() for a in cluster.common]],
                                capture_output=True, timeout=60, env=cluster.env)
        stderr = result.stderr.decode(errors="replace")
        assert result.returncode != 0, stderr
        assert f"the value of {option} is not valid UTF-8" in stderr, stderr
    scores = cluster.kafka_run("scores", "--json", "--timeout", "3", check=False).stdout
    assert scores.strip() == "", "nothing was published"
