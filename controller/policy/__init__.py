"""The promotion policy: from, soak, gates, windows, holds and
rejections as pure functions over evidence the controller recorded itself, never over what a
commit claims. Rule: rules are pure; `facts` gathers what they judge through core's ports
only; may import `desired` and `core`."""
