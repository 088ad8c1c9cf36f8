"""The emulated InterSystems IRIS instance: a real process with a CPF, messages.log, ports and a
control program, playing failure scenarios; plus offline generation and incident bundles.

Python API: `irisd.emulator.layout.init_instance` lays an instance out; `irisd.emulator.control`
starts, waits, merges, stops and forces it. See docs/emulator.md.
"""
