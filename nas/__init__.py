"""``nas``: architecture searches measured on (virtual) boards, pruned and repaired by the learned cost model.

One module per job, in Optuna's manner (samplers, rules and storages are separate, swappable objects with
small interfaces; a storage is a URL):

``spaces``      search spaces as code: ``SearchSpace.build(trial, input_shape, classes)``; ``cnn``, ``dscnn``
``datasets``    ``.npz`` datasets and the offline default (scikit-learn's digits)
``convert``     Keras to .tflite (full int8, float32, dynamic-range) from the model's concrete function
``workers``     TensorFlow's side in worker processes: build a candidate from a trial, convert, train
``evaluate``    host accuracy with the TFLite interpreter; a model converted three ways
``objectives``  objectives and budgets from the command line (budgets are Optuna constraints)
``samplers``    Optuna samplers by name
``rules``       what becomes of a candidate before a measurement: reject, prune, repair
``adapter``     the one view of the lab: the fit verdict, the learned cost model, the measurement store, agents
``search``      one search worker: the trial pipeline, ask-and-tell, heartbeats, interruption
``storage``     Optuna RDB storages (SQLite, PostgreSQL) and what a study is
``pareto``      Pareto fronts and hypervolume
``report``      the self-contained HTML report
``validate``    on-board validation of the final front
``cli``         ``nas search | report | convert | evaluate | spaces``

The search process never imports TensorFlow. ``adapter`` is the only module that uses the learned cost model,
the measurement store, the agent pool and the fit verdict (``costmodel.LatencyModel``, ``costmodel.store``,
``measure_agent.agents``, ``.results``, ``.fit``); the others use the analysis (``costmodel.analyze``), the
reference interpreter and the cache root.
"""
