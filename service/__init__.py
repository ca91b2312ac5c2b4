"""latentcast's web service: HTTP API, storage, background training and forecasting.

It uses the latent ODE library in `model` through its public names only.
"""

__all__: list[str] = []
