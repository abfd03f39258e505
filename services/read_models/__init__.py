"""Read-models that combine several domains for one page: the organization's overview, a run's page read as
one snapshot (run_snapshot), failures grouped by cause (failures), and others. Above every domain;
nothing below imports them.
"""
