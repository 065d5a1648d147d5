"""One trial = one process, forked from a fork server that imported the heavy stack once.

* ``_job``: what a trial process is asked to do (:class:`TrialJob`) and when it probes the model;
* ``_forkserver``: the fork server, and the file the trial processes' stderr goes to;
* ``_lifetime``: no process outlives its worker (``PR_SET_PDEATHSIG``);
* ``_child``: the trial process's side of the step protocol (build, probe, train one step at a time);
* ``_process``: the worker's side (:class:`TrialProcess`): sampling the child, hard caps, deaths, totals;
* ``_preload``: what the fork server imports.
"""
