<!-- placeholder: the dashboard branch brings this file -->
