"""hal plugin for the example accelerator: a target backend and a HAL driver.

* :mod:`hal_example.plugin` registers both with hal (light descriptors only).
* :mod:`hal_example.target` lowers kernel IR to the ``example-program`` format
  (:mod:`hal_example.program`).
* :mod:`hal_example.driver` is the HAL driver: a device with its own memory and queue that runs
  ``example-program`` executables (:mod:`hal_example.interpreter`).
"""

#: The name of the driver and of the target backend.
NAME = "example"
#: The executable format the target produces and the device prepares.
FORMAT = "example-program"
