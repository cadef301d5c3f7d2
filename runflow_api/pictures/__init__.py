"""Pictures: reading an original, decoding and encoding pixels, the results' types, rendering options
applied after a run (background, outputs, clean edges) and the QA flags judged from the matte. No
HTTP and no money: the same pixels give the same pictures.
"""
