"""The build engine: what every builder plugin runs on.

Plugins reach it through packwrap.sdk only. One module per concern:
  step.py, state.py, runner.py   Step (run/cleanup), If(cond, step), State (the state bag,
                                 cancel event, sleep), run_steps (reverse cleanup,
                                 -on-error, -debug)
  common_options.py              HTTP_/BOOT_/SHUTDOWN_/COMM_OPTIONS and their *_CHECKS
  console.py                     SerialConsole: log, expect, echo-checked typing, tail;
                                 BuildFailed (an error that ends with the console's tail)
  bootcommand.py                 Packer's boot_command grammar -> serial bytes
  http_server.py                 the docroot HTTP server; render_generated_files
  steps/http_server.py           StepHTTPServer (+ template_data, resolve_http_directory)
  steps/boot_command.py          StepTypeBootCommand
  steps/output_dir.py            StepOutputDir (Packer's own-directory policy, or an image
                                 in a shared directory)
  ui.py                          Ui; log_line(ui, text); `with waiting(ui, text):` for a
                                 long wait (live elapsed time on a terminal)
  session.py                     `packwrap build`: parallel builds, logs, signals, summary,
                                 hand-off to packer (post-processors: packwrap/postprocess)
State bag keys the core reads or writes: console, http_ip, http_port, http_guest_port,
http_bind_address, http_server, http_overlay_dir, vm_name, cleanup_hints, log_dir;
for a blueprint project also generated_files (out-of-date docroot files rendered for the
build's variables, served from the overlay) and project_values (those variables).
"""
