"""The Streamlit dashboard: the only part of the package that imports streamlit.

`app.py` is the entry point; each view lives in its own module and only asks and shows.
"""
