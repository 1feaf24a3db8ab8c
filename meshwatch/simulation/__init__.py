"""Simulation: realistic call streams for public topologies (Istio's Bookinfo, Google's
Online Boutique) with diurnal load, background errors, rollouts and scale-ups, plus injected
attacks with ground truth, for ``meshwatch evaluate``. Pure code, seeded."""
