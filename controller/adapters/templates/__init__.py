"""The web page's Jinja2 templates, shipped as package data (a package of its own, so
setuptools installs them without warnings)."""
