"""Read-models that combine several domains for one page (the organization's overview). Above every
domain; nothing below imports them.
"""
