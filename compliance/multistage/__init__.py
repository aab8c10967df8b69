"""The multistage baseline: detector + plate locator + plate reader + face matcher, composed."""
