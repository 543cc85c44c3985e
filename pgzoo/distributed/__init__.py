"""The Ray driver of the actor-learner algorithms (A3C, IMPALA): ``pgzoo.distributed.driver``.
Ray is imported only when a run uses it (the optional extra ``distributed``)."""
