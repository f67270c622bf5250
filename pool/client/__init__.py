"""The client layer: ``PoolRedis`` (= arq's ``ArqRedis``) and ``create_pool``, ``Job`` handles, queue inspection
and the health report reader. Built on the storage layer; knows nothing of workers."""
