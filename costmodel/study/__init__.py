"""The paper's experiments as one study: models x boards x firmware configurations, measured through agents into
the measurement store, and one self-contained HTML report that states which of the paper's findings hold.

==============  ===================================================================================================
``models``      the two built-in models (LeNet-5 32x32x1, ResNet-20 32x32x3), trained briefly, and the user's own;
                each as float32, dynamic-range and full int8 ``.tflite``
``data``        the dataset (scikit-learn's digits by default, or an ``.npz``)
``configs``     the paper's configurations: float without / with FPU, dynamic-range, int8 with reference / SIMD
                kernels, each at -Os and -O3
``results``     the study's numbers from the store's rows: tables 1-4, figures 2-5, the energy correlation, the
                Pareto front across boards
``findings``    the paper's findings, each computed from the numbers: reproduced or not
``report``      the HTML report (Plotly inlined), CSV and JSON of every number
==============  ===================================================================================================

The measuring itself (agents, firmware, the fit verdict, stage F on a board) is ``costmodel/commands/study.py``: the
library here knows nothing of the agent.
"""
