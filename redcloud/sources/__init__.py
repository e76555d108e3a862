"""Source connectors: organisation databases, 数据铁笼 landing folder, web reference data."""
