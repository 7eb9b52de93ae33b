"""Train a Bi-LSTM super-resolution model with plain Keras on trajsr's public API. Copy and adapt.

    python models/keras_example.py data/ethanol/ethanol-gfn2-seed{1,2,3}.h5 --valid data/ethanol/ethanol-gfn2-seed16.h5

Steps: windows from fine trajectories -> tf.data -> a trajsr Keras model -> model.fit with the Keras
callbacks you like -> model.save(".keras") -> trajsr.LearnedInterpolator(model) upsamples.
(`trajsr train` / `trajsr.fit` do the same with checkpoints, resume and a CSV log.)
"""
import argparse

import keras

import trajsr

p = argparse.ArgumentParser()
p.add_argument("train", nargs="+")
p.add_argument("--valid", required=True)
p.add_argument("--factor", type=int, default=10)
p.add_argument("--epochs", type=int, default=5)
p.add_argument("-o", "--output", default="my-bilstm.keras")
args = p.parse_args()

train = [trajsr.load(path) for path in args.train]
valid = trajsr.load(args.valid)
reference = trajsr.reference_geometry(train[0])          # canonical frame: centred first frame, nm
opts = dict(factor=args.factor, context=4, reference=reference)
train_windows = trajsr.concatenate_windows([trajsr.training_windows(t, step=2, **opts) for t in train])
valid_windows = trajsr.training_windows(valid, step=args.factor, **opts)

model = trajsr.build_model("bilstm", n_atoms=train[0].n_atoms, factor=args.factor, context=4, width=128,
                           metadata=dict(elements=train[0].elements, dt_fs=train[0].dt * trajsr.units.FS_PER_PS,
                                         reference=reference.tolist()))
trajsr.gap_layer(model).set_normalization(trajsr.normalization_stats(train_windows))   # training data only
model.fit(trajsr.windows_dataset(train_windows, 256),
          validation_data=trajsr.windows_dataset(valid_windows, 1024, shuffle=False),
          epochs=args.epochs, shuffle=False,
          callbacks=[keras.callbacks.EarlyStopping(patience=5, restore_best_weights=True),
                     keras.callbacks.ReduceLROnPlateau(patience=2)])
model.save(args.output)

coarse = valid.stride(args.factor)
rebuilt = trajsr.LearnedInterpolator(args.output).interpolate(coarse)
spline = trajsr.get_baseline("spline").interpolate(coarse, args.factor)
for name, traj in [("model", rebuilt), ("spline", spline)]:
    print(f"{name}: MAE {trajsr.reconstruction_errors(valid, traj, args.factor)['mae_angstrom']:.2e} Å")
