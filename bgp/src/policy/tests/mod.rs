mod prefix_list;
