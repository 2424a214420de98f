"""Offline routing evaluation and calibration: answer task items with an edge and a cloud model, fit and score
routers (`edgewise route eval`), and choose a policy's threshold (`edgewise route calibrate`).

Nothing here runs at serve time: the router reads the policy file these write, and the scorers it needs live in
edgewise.route.confidence. Import the modules directly; this package imports nothing on its own.
"""
