"""A phase's steady state, on every backend (pure, apart from the warm-up's sockets).

- :mod:`.model`: where the load's conntrack table settles (Little's law per flow kind);
- :mod:`.warmup`: the aged warm-up that starts a phase in that steady state;
- :mod:`.assess`: whether the sampled table reached it, and the window that is judged;
- :mod:`.result`: result.json's ``steady_state`` from the model and the measured timelines.
"""
