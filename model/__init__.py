"""latentcast's latent ODE library (placeholder until model/ lands)."""

__all__: list[str] = []
