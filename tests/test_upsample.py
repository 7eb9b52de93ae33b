"""Upsampling files with a trained model, resuming killed training, distribution strategies."""
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest

from trajsr import load, reconstruction_errors, save
from trajsr.interpolation.streaming import upsample, upsample_trajectory


def test_streaming_equals_in_memory(tmp_path, tiny_model, ethanol):
    coarse = ethanol.stride(5)
    save(coarse, tmp_path / "coarse.h5")
    memory = upsample_trajectory(coarse, tiny_model)
    for name in ("fine.h5", "fine.xtc", "fine.npz"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # xtc's precision warning is tested in test_bad_inputs
            summary = upsample(tmp_path / "coarse.h5", tiny_model, tmp_path / name, chunk=13, progress=False)
        assert summary.fine_frames == memory.n_frames == ethanol.n_frames
        assert summary.spline_gaps == 2  # K - 1 = 1 gap at each end
        top = _pdb(tmp_path, ethanol) if name == "fine.xtc" else None
        back = load(tmp_path / name, top=top)
        tol = 6e-4 if name == "fine.xtc" else 1e-6
        np.testing.assert_allclose(back.positions, memory.positions, atol=tol)
    np.testing.assert_array_equal(memory.positions[::5], coarse.positions)


@pytest.mark.parametrize("method", ["linear", "spline", "hermite"])
def test_baselines_stream_like_in_memory(tmp_path, ethanol, method):
    """Any interpolator streams: chunked output equals the in-memory result (the spline to round-off)."""
    from trajsr import get_baseline
    coarse = ethanol.stride(4)
    save(coarse, tmp_path / "coarse.h5")
    interp = get_baseline(method)
    memory = interp.interpolate(coarse, 4)
    summary = upsample(tmp_path / "coarse.h5", interp, tmp_path / "fine.h5", factor=4, chunk=4 * interp.context,
                       progress=False)
    back = load(tmp_path / "fine.h5")
    assert summary.fine_frames == back.n_frames == memory.n_frames and summary.spline_gaps == 0
    np.testing.assert_allclose(back.positions, memory.positions, atol=1e-7)  # float32 file
    if memory.velocities is not None:
        np.testing.assert_allclose(back.velocities, memory.velocities, rtol=1e-5, atol=1e-5)


def _pdb(tmp_path, ethanol):
    save(ethanol[:1], tmp_path / "top.pdb", force=True)
    return tmp_path / "top.pdb"


def test_cli_train_and_upsample(tmp_path, cli, ethanol):
    save(ethanol[:500], tmp_path / "a.h5")
    save(ethanol[500:], tmp_path / "b.h5")
    out = cli("train", tmp_path / "a.h5", tmp_path / "b.h5", "--model", "rnn", "--factor", 5, "--context", 2,
              "--width", 8, "--epochs", 1, "--window-step", 5, "-o", tmp_path / "m.keras", "--quiet").stdout
    assert "validation MAE" in out and "Å" in out
    save(ethanol.stride(5), tmp_path / "coarse.dcd")
    pdb = _pdb(tmp_path, ethanol)
    out = cli("upsample", tmp_path / "coarse.dcd", "-t", pdb, "--dt", 2.5, "--model", tmp_path / "m.keras",
              "-o", tmp_path / "fine.dcd").stdout
    assert "1001 frames" in out and "spline" in out
    e = reconstruction_errors(ethanol, load(tmp_path / "fine.dcd", top=pdb, dt_fs=0.5), 5)
    assert e["mae_angstrom"] < 0.02
    # a trajectory whose spacing is not factor x dt: one line, no output
    save(ethanol.stride(10), tmp_path / "c10.h5")
    proc = cli("upsample", tmp_path / "c10.h5", "--model", tmp_path / "m.keras", "-o", tmp_path / "x.h5",
               check=False)
    assert proc.returncode == 2 and "5 fs apart" in proc.stderr and "2.5 fs" in proc.stderr
    assert not (tmp_path / "x.h5").exists()


def test_killed_training_resumes_with_the_best_weights_and_only_with_its_settings(tmp_path, ethanol):
    import keras

    from trajsr import TrajsrError
    from trajsr.interpolation.gap import gap_layer
    from trajsr.interpolation.train import fit
    from trajsr.interpolation.windows import concatenate, reference_geometry, training_windows

    class Kill(keras.callbacks.Callback):  # Ctrl-C at the start of the third epoch
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 2:
                raise KeyboardInterrupt("killed")

    opts = dict(model="rnn", factor=5, context=2, width=4, epochs=5, window_step=5, verbose=0,
                output=tmp_path / "m.keras")
    train, valid = [ethanol[:500]], [ethanol[500:]]
    with pytest.raises(KeyboardInterrupt):
        fit(train, validation=valid, callbacks=[Kill()], **opts)
    work = tmp_path / "m.keras.work"
    assert (work / "settings.json").exists() and not (tmp_path / "m.keras").exists()
    with pytest.raises(TrajsrError, match="other settings.*width"):
        fit(train, validation=valid, **dict(opts, width=8))
    with pytest.raises(TrajsrError, match="other settings.*model"):
        fit(train, validation=valid, **dict(opts, model="lstm"))
    net, history = fit(train, validation=valid, **opts)
    assert len(history.history["loss"]) == 5  # epochs 0-1 before the kill, 2-4 after it
    assert gap_layer(net).metadata["training"]["epochs"] == 5
    assert not work.exists()  # the default work folder goes after a successful save
    # the saved model is the best epoch of all five, not the last one
    saved = keras.saving.load_model(tmp_path / "m.keras")
    saved.compile(loss="mae")  # saved for inference, without optimizer state
    w = concatenate([training_windows(t, factor=5, context=2, reference=reference_geometry(train[0]), step=5)
                     for t in valid])
    assert saved.evaluate(w.inputs(), w.targets(), verbose=0) == pytest.approx(min(history.history["val_loss"]),
                                                                              rel=1e-4)


def test_time_limit_is_checked_after_every_batch(ethanol):
    import keras

    from trajsr.interpolation.train import fit
    batches = []
    count = keras.callbacks.LambdaCallback(on_train_batch_end=lambda batch, logs: batches.append(batch))
    fit([ethanol[:500]], model="rnn", factor=5, context=2, width=4, epochs=3, window_step=1, batch_size=8,
        max_minutes=1e-9, verbose=0, callbacks=[count])
    assert len(batches) == 1


def test_mirrored_strategy_on_two_logical_cpus(tmp_path):
    code = textwrap.dedent(f"""
        import tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        from trajsr.datasets import shipped_path
        from trajsr.io import load
        from trajsr.interpolation.train import fit
        from trajsr.training import distribution_strategy
        assert distribution_strategy("mirrored").num_replicas_in_sync == 2
        t = load(shipped_path("ethanol-gfn2"))[:600]
        net, h = fit([t[:300]], validation=[t[300:]], model="rnn", factor=5, context=2, width=4, epochs=2,
                     window_step=5, verbose=0, strategy="mirrored", batch_size=16, output=r"{tmp_path / 'm.keras'}")
        print("replicas ok", len(h.history["loss"]))
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert "replicas ok 2" in proc.stdout, proc.stderr[-2000:]
    assert (tmp_path / "m.keras").exists()


def _free_ports(n):
    import socket
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def test_two_workers_on_localhost_train_one_model(tmp_path, ethanol):
    """The README's multi-worker command as written: two ``trajsr train --strategy multiworker`` processes
    with TF_CONFIG train one model; only the chief writes it (and its card)."""
    import json
    import os
    save(ethanol[:300], tmp_path / "a.h5")
    save(ethanol[300:600], tmp_path / "b.h5")
    ports = _free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    command = [sys.executable, "-m", "trajsr.cli", "train", "a.h5", "--validation", "b.h5", "--model", "rnn",
               "--factor", "5", "--context", "2", "--width", "4", "--epochs", "2", "--window-step", "5",
               "--batch-size", "16", "--strategy", "multiworker", "--quiet", "-o", "m.keras"]
    procs = []
    for i in range(2):
        env = dict(os.environ, TF_CONFIG=json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}}),
                   TF_CPP_MIN_LOG_LEVEL="3")
        procs.append(subprocess.Popen(command, env=env, cwd=tmp_path, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True))
    outs = [p.communicate(timeout=300) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err[-3000:]
    assert "-> m.keras" in outs[0][0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.h5", "b.h5", "m.json", "m.keras"]  # the chief's only


def test_malformed_cluster_is_one_line(tmp_path, cli, ethanol, monkeypatch):
    save(ethanol[:300], tmp_path / "a.h5")
    for config, words in (("{not json", "not valid JSON"), ('{"cluster": {"worker": ["h:1"]}}', '"task"'),
                          ('{"cluster": {"worker": ["h:1"]}, "task": {"type": "worker", "index": 3}}', "index 3")):
        monkeypatch.setenv("TF_CONFIG", config)
        proc = cli("train", tmp_path / "a.h5", "--factor", 5, "--strategy", "multiworker", "-o", tmp_path / "m.keras",
                   check=False)
        assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and words in proc.stderr, proc.stderr
    assert not (tmp_path / "m.keras").exists()


def test_train_with_velocities_from_extxyz_and_trr_writes_a_card(tmp_path, ethanol):
    """Your own AIMD files: velocities read from extxyz and trr, card judged against Hermite."""
    import json

    from trajsr.interpolation.train import fit
    save(ethanol[:500], tmp_path / "run1.extxyz")
    save(ethanol[500:], tmp_path / "run2.trr")
    save(ethanol[:1], tmp_path / "top.pdb")
    train = [load(tmp_path / "run1.extxyz"), load(tmp_path / "run2.trr", top=tmp_path / "top.pdb")]
    assert all(t.has_velocities for t in train)
    fit(train[:1], validation=train[1:], model="rnn", factor=5, context=2, width=4, epochs=1, window_step=5,
        with_velocities=True, verbose=0, output=tmp_path / "v.keras")
    card = json.loads((tmp_path / "v.json").read_text())
    assert card["settings"]["with_velocities"] and {"median", "worst"} <= set(card["evaluation"]["hermite_over_model"])
    # a with-velocities model refuses a file that stores none, before any work
    save(ethanol[:200], tmp_path / "positions.dcd")
    coarse = load(tmp_path / "positions.dcd", top=tmp_path / "top.pdb", dt_fs=0.5).stride(5)
    assert not coarse.has_velocities
    from trajsr import TrajsrError
    from trajsr.interpolation.learned import LearnedInterpolator
    with pytest.raises(TrajsrError, match="needs velocities, and this file stores none"):
        LearnedInterpolator(tmp_path / "v.keras").interpolate(coarse, 5)
