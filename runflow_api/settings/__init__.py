"""Settings: where the engine finds its key, its secrets and its folders, and how a secret is kept out of
text. Read by every stage; imports none of them.
"""
