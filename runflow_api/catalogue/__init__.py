"""The command line and its catalogues: `python -m runflow_api` (`cli`), a folder of photos as work
items (`folders`), one catalogue through isolate (`isolate`) and its HTML report.
"""
