"""One results seam: the result.json schema (:mod:`.schema`), building a phase's result from
its measurements (:mod:`.build`), a locustfile load's section (:mod:`.locust`), the
before/after comparisons (:mod:`.compare`), the typed evidence every backend hands over
(:mod:`.evidence`) and the record of one run, kept whatever fails after the measurement
(:mod:`.record`).

Import the modules themselves (``from harness.results.schema import RunResult``): the builders
import the diagnosis and the metrics, which import the schema, so nothing is re-exported here.
"""
