"""The conversation with Runflow: which service and at which address, the one place that sends HTTP, which
URLs may be fetched, uploads (assets), runs, the account, callbacks and the Cancel contract every wait
keeps. It talks; it records nothing: what a run cost and how long it took is kept by the flow.
"""
