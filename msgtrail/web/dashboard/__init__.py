"""The dashboard: message reports in the browser, served by `msgtrail serve`."""
