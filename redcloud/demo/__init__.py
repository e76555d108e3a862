"""The demo: a synthetic city and the stand-ins for its source systems. Production code never imports it.

- :mod:`redcloud.demo.synth`: the deterministic synthetic city (members, cadres, apps, 数据铁笼, web);
- :mod:`redcloud.demo.sources`: loads the city into the organisation databases;
- :mod:`redcloud.demo.landing`: drops its 数据铁笼 exports into the landing folder;
- :mod:`redcloud.demo.web_server`: serves its web reference data over HTTP;
- :mod:`redcloud.demo.cli`: ``redcloud-demo synth | load | up | demo``.

The city honours the source contracts in :mod:`redcloud.contracts`, which the connectors read.
"""
