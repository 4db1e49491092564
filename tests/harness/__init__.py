"""What tests share: servers, the browser, the CLI, faces, records, the cluster. Tests import
helpers from here (and fixtures from conftest.py files), never from another test module
(tests/test_harness_imports.py checks it). tests/README.md maps the modules."""
